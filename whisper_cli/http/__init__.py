"""`wt serve`: the HTTP door. A stateless producer and reader of the spool.

Uploads become spool drops (`Spool.deliver`); status, results and cancels are read and
written through the spool's files. The server keeps no job state, so every spool guarantee
(crash safety, exactly-once, cancel, several daemons) holds for HTTP jobs, and any number of
servers can run in front of any number of daemons.

  app.py         the FastAPI app: routers, bearer-token auth, error shapes
  uploads.py     upload -> spool drop (size limit, queue bound)
  render.py      a finished job's result as the replaced service and the OpenAI API show it
  legacy.py      the replaced service's API: /transcribe, /status, /cancel, /health
  openai_api.py  the OpenAI audio API: /v1/audio/transcriptions, /translations, /models
  native.py      wt's own: /jobs, /jobs/{id}, /jobs/{id}/result, DELETE /jobs/{id}
"""
