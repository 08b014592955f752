"""Flask extensions, created unbound here and bound to each app in :func:`modelhub.app.create_app`
(Flask-Migrate's is bound only where migrations run: :func:`modelhub.database.migrations`)."""

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


# Sessions live for one request. Keeping attributes after commit spares a second round trip to read
# back a row we just wrote (the response is built from it); version and updated_at are computed in
# Python, so the object already holds what the database holds.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
