"""The Textual app. The only package that imports textual; it talks to the engine through chat.session."""
