"""Generated EXI codec modules: one per schema. Never edit; run python -m exi_schemas.generator."""
