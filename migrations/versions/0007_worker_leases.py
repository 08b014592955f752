"""worker leases: one owner per running model worker, shared by every web process

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 08:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('worker_lease',
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('job', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('stage', sa.String(length=32), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('owner_pid', sa.Integer(), nullable=False),
    sa.Column('worker_pid', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deadline_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('stop_reason', sa.Text(), nullable=True),
    sa.CheckConstraint("job IN ('load', 'measure')", name='ck_worker_lease_job'),
    sa.CheckConstraint("state IN ('loading', 'loaded')", name='ck_worker_lease_state'),
    sa.ForeignKeyConstraint(['model_id'], ['modelregistry.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('model_id')
    )


def downgrade():
    op.drop_table('worker_lease')
