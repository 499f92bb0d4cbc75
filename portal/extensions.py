"""Extensions, created unbound and bound in create_app()."""

from flask_babel import Babel
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from models import Base
from portal.http import rate_limit_key

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
babel = Babel()
# Keyed on a daily-rotating keyed hash of the address: Redis (or memory) never holds an IP.
limiter = Limiter(key_func=rate_limit_key, default_limits=[], headers_enabled=False)
