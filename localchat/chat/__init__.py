"""Chat domain: messages, sampling parameters and context-window budgeting (pure logic, no I/O)."""
