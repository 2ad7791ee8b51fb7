"""The Streamlit pages of reportqa (app.py sets up the navigation). With app.py, the only code that calls st.*;
what can be pure lives in qa/ui*.py."""
