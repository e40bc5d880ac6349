"""Item file formats: `yaml_format` (native) and `xlsx` (spreadsheet import)."""
