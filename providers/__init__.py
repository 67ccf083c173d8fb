"""Model providers: the model registry and the clients that call chat, embedding and rerank models.

A plain package (no Django models). It imports only `config`; `chat` and `datasets` import it."""
