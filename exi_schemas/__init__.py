"""EXI codec generated from the official V2G XSDs."""
