"""Case-insensitive name indexes for the Models page.

The page lists models ordered by lower(model_name), optionally within one status; these indexes let
the database read the first page directly instead of sorting the whole table. The composite index also
serves status filters, so the plain status index goes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 05:43:29.664915

"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index("ix_modelregistry_compatibility_status", table_name="modelregistry")
    op.create_index("ix_modelregistry_name_lower", "modelregistry", [sa.text("lower(model_name)")])
    op.create_index(
        "ix_modelregistry_status_name_lower", "modelregistry", ["compatibility_status", sa.text("lower(model_name)")]
    )


def downgrade():
    op.drop_index("ix_modelregistry_status_name_lower", table_name="modelregistry")
    op.drop_index("ix_modelregistry_name_lower", table_name="modelregistry")
    op.create_index("ix_modelregistry_compatibility_status", "modelregistry", ["compatibility_status"])
