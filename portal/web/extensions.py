"""Extensions, created unbound and bound in create_app()."""

from flask_babel import Babel
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from models import Base

# `db.session` is a scoped_session: a registry that forwards each call to the Session of the
# current app context (a request, a CLI command). The domain (portal/intake, triage, cases,
# security, operations, auditlog) takes a plain `Session` and never sees Flask, so the faces
# hand it `db.session()`: calling the registry returns that very Session, which is what its
# proxy would have used, so behaviour is the same and the domain's signatures stay narrow.
# Calls the faces make themselves (`db.session.commit()`, `.execute(...)`) go through the proxy.
db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
babel = Babel()
