"""What every layer may use: the exception types (with their exit codes) and safe printing."""
