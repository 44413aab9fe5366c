# AlphaStream: the dashboard server (streamlit run app.py) or, with another command, a recorder (python -m ingest).
# Build: docker build -t alphastream .
# Run:   docker run -p 8501:8501 -e ALPHASTREAM_AUTH_TOKEN=<long secret> -e ALPHASTREAM_ALLOWED_HOSTS=localhost \
#          -v alphastream-data:/app/data alphastream
# In a container the server must listen beyond loopback, which AlphaStream refuses without a token (README, Security).
# Scale-out with PostgreSQL: docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 ALPHASTREAM_DB_PATH=/app/data/alphastream.sqlite
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY config.py app.py cli.py ./
COPY .streamlit .streamlit
COPY analytics analytics
COPY storage storage
COPY ingest ingest
COPY alerts alerts
COPY server server
COPY ui ui
RUN useradd --create-home alphastream && mkdir -p /app/data && chown alphastream /app/data
USER alphastream
EXPOSE 8501
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/healthz', timeout=3)"
CMD ["streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501"]
