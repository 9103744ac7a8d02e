"""Talking to the CustomGPT.ai API: settings, pacing, retries, the client, and live state."""
