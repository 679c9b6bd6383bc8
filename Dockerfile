FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY driftline ./driftline
RUN pip install --no-cache-dir .
USER nobody
WORKDIR /tmp
ENTRYPOINT ["driftline"]
CMD ["run", "-c", "/etc/driftline/driftline.yaml"]
