"""One module per `harness` subcommand: `add_parser(subparsers)` and `run(args) -> int`."""
