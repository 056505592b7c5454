"""Translations between the APIs clients speak and the chat-completions request the engine routes.

Pure functions and small stream state machines, no I/O: each dialect turns its API's request
into a chat-completions body (`to_chat`), a chat completion into its API's answer
(`from_chat`), and chat stream frames into its API's stream events (a `*Events` class fed one
parsed chat chunk at a time). The edge (`turnout.api.messages`, `turnout.api.responses`)
calls them; the engine, failover and streaming layer only ever see chat completions.
"""
