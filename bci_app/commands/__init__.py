"""Sub-commands of ``bci-app``.

Each module here defines ``register(subparsers)`` which adds its sub-command(s) with
``parser.set_defaults(func=run)``; ``run(args) -> int`` returns the exit status. Modules are
discovered automatically, so adding a command never means editing a central list.
"""
