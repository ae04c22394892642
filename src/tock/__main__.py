from tock.cli.main import main

main()
