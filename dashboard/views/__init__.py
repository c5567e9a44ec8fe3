"""The dashboard's pages: thin scripts that Streamlit runs by path (see ``app.py``)."""
