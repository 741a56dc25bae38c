"""Inference in its own process.

`protocol` defines the typed messages, `worker` runs llama.cpp in a child process, `client` is what the rest of
localchat talks to. Only `worker` and `runner` import llama_cpp, and only inside the child process.
"""
