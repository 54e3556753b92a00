"""Bot processes and GPU worker processes joined by Redis Streams (docs/DESIGN.md, decision 9).

    keys.py        every key name, under one Redis Cluster hash tag
    messages.py    what a request and a reply carry on the streams
    scripts.py     the Lua scripts that make admission and completion atomic
    connection.py  connecting from a URL (redis://, rediss://, unix://)
    remote.py      `RemoteGenerator`: the bot side, the same `Generator` as the in-process worker
    serving.py     `BrokerWorker`: the `punchline worker` side, feeding a local `InferenceWorker`
    fleet.py       the desired adapter set, adapter upload, reload across workers, status
    exposition.py  `/metrics` and `/healthz` over HTTP

Nothing here imports torch or a chat library at import time.
"""
