"""The `sluice` command, the local stack and the simulator. Never imported by the runtime."""
