# AlphaStream dashboard + ingestion in one container.
# Build: docker build -t alphastream .   Run: docker run -p 8501:8501 -v alphastream-data:/app/data alphastream
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 ALPHASTREAM_DB_PATH=/app/data/alphastream.sqlite
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY config.py app.py ./
COPY .streamlit .streamlit
COPY analytics analytics
COPY storage storage
COPY ingest ingest
COPY alerts alerts
COPY ui ui
RUN useradd --create-home alphastream && mkdir -p /app/data && chown alphastream /app/data
USER alphastream
EXPOSE 8501
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=3)"
CMD ["streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501"]
