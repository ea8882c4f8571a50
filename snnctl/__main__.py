from snnctl.cli import main

main()
