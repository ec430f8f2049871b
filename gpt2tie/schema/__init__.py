"""The JSON Schema of the report (schema_version 1), shipped with the package."""
