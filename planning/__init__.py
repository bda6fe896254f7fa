"""Planning: crime import, harm weights, hot spot targeting, taskings."""

# sqlite-utils imported the gateway's way, without pandas and numpy (gateway/__init__.py).
import gateway  # noqa: F401
