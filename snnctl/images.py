"""Image folders for the MAMMO task (owner: helper-2, in progress)."""
