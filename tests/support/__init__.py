"""What tests share: fixtures (registered in tests/conftest.py through
`pytest_plugins`) and helpers that test modules import from here, never
from one another."""
