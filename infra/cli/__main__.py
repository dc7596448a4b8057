from infra.cli.commands import main

main()
