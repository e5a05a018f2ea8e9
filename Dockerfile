# carebot in a container: the daemon (`carebot run`) by default; `carebot web` for the approval desk.
#
#   docker build -t carebot .
#   docker run -d --name carebot -v carebot-data:/data -v "$PWD/carebot.yaml:/config/carebot.yaml:ro" \
#     -e MASTODON_TOKEN -p 127.0.0.1:9464:9464 carebot
#
# The config is read from /config/carebot.yaml ($CAREBOT_CONFIG); docker/carebot.yaml is one made for
# containers (every address and path below comes from it). Secrets come from the environment.
# compose.yaml runs two workers on PostgreSQL, and the desk.
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md config.example.yaml ./
COPY bot ./bot
COPY connectors ./connectors
COPY playbooks ./playbooks
RUN pip install --no-cache-dir '.[postgres]' \
    && useradd --create-home --uid 10001 carebot \
    && mkdir -p /data /config \
    && chown carebot /data
USER carebot

# The SQLite database (storage.url: sqlite:////data/carebot.db) lives in this volume: a new container keeps
# the cursor and every reply, so nothing is answered twice. With PostgreSQL, nothing is kept here.
VOLUME ["/data"]
ENV CAREBOT_CONFIG=/config/carebot.yaml
# 8080: the approval desk (`carebot web`, or `carebot run --web`); 9464: /metrics and /health of `carebot run`.
# docker/carebot.yaml listens on 0.0.0.0 for both: inside a container, 127.0.0.1 is unreachable from outside.
EXPOSE 8080 9464
# SIGTERM stops it cleanly: in-flight work is finished or safely abandoned.
STOPSIGNAL SIGTERM
ENTRYPOINT ["carebot"]
CMD ["run"]
