"""One module per trigger payload. Each turns its trigger's event into LogEvents."""
