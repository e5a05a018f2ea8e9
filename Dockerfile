# carebot: the daemon, with SQLite by default (mount a config; pass secrets as environment variables).
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY connectors ./connectors
COPY playbooks ./playbooks
RUN pip install --no-cache-dir '.[postgres]' && useradd --create-home carebot && chown carebot /app
USER carebot

ENV CAREBOT_CONFIG=/app/carebot.yaml
# SIGTERM stops it cleanly: in-flight work is finished or safely abandoned.
STOPSIGNAL SIGTERM
ENTRYPOINT ["carebot"]
CMD ["run"]
