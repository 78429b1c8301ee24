"""The command line's front end: one module per `netpolcheck` subcommand, each exposing
`register(subparsers)`. The pure packages (`model`, `report`) hold no command and do no I/O; these
modules read the inputs, call them and write the outputs."""
