"""Model files: GGUF metadata and validation, memory estimates."""
