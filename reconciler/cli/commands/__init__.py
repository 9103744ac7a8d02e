"""The commands, one module each: a frozen dataclass of its parameters and `run(params,
console) -> int`, the exit code. They load, plan, apply and render by calling the layers, and
write only through the `Console`. What several share is in `cli/common.py`."""
