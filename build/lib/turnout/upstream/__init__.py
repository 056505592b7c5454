"""How bytes reach a provider (the OpenAI wire, LiteLLM translation) and how its failures are classified."""
