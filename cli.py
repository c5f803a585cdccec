from coldstart.cli import main

main()
