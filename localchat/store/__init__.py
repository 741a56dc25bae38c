"""SQLite persistence: conversations, messages (a tree: edits make branches), system prompts, settings."""
