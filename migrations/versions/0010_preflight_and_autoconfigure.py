"""preflight predictions next to measured peaks, classified failures, auto-configure runs

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 14:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

RUN_STATES = "'running', 'succeeded', 'failed', 'stopped', 'interrupted'"


def upgrade():
    op.create_table('autoconfigure_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('environment_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('start_config', sa.Text(), nullable=True),
    sa.Column('result_config', sa.Text(), nullable=True),
    sa.Column('result_status', sa.String(length=16), nullable=True),
    sa.Column('result_reason', sa.Text(), nullable=True),
    sa.Column('tries', sa.JSON(), nullable=True),
    sa.Column('max_tries', sa.Integer(), nullable=False),
    sa.Column('max_seconds', sa.Float(), nullable=False),
    sa.Column('apply', sa.Boolean(), nullable=False),
    sa.Column('stop_requested', sa.Boolean(), nullable=False),
    sa.Column('applied_version_id', sa.Integer(), nullable=True),
    sa.Column('owner_pid', sa.Integer(), nullable=True),
    sa.CheckConstraint(f"state IN ({RUN_STATES})", name='ck_autoconfigure_run_state'),
    sa.ForeignKeyConstraint(['model_id'], ['modelregistry.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['environment_id'], ['environment.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['applied_version_id'], ['load_config_version.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_autoconfigure_run_model_id', 'autoconfigure_run', ['model_id'])
    # One running search per model, whichever process or host starts it: the database decides a race.
    op.create_index('uq_autoconfigure_run_one_running', 'autoconfigure_run', ['model_id'], unique=True,
                    sqlite_where=sa.text("state = 'running'"), postgresql_where=sa.text("state = 'running'"))
    with op.batch_alter_table('load_attempt') as batch:
        batch.add_column(sa.Column('failure_kind', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('autoconfigure_run_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('limitation', sa.Text(), nullable=True))
        batch.add_column(sa.Column('predicted_peak', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('measured_peak', sa.JSON(), nullable=True))
        batch.create_foreign_key('fk_load_attempt_autoconfigure_run_id', 'autoconfigure_run',
                                 ['autoconfigure_run_id'], ['id'], ondelete='SET NULL')
        batch.create_index('ix_load_attempt_autoconfigure_run_id', ['autoconfigure_run_id'])
    with op.batch_alter_table('measurement') as batch:
        batch.add_column(sa.Column('predicted_peak', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('measurement') as batch:
        batch.drop_column('predicted_peak')
    with op.batch_alter_table('load_attempt') as batch:
        batch.drop_index('ix_load_attempt_autoconfigure_run_id')
        batch.drop_constraint('fk_load_attempt_autoconfigure_run_id', type_='foreignkey')
        batch.drop_column('measured_peak')
        batch.drop_column('predicted_peak')
        batch.drop_column('limitation')
        batch.drop_column('autoconfigure_run_id')
        batch.drop_column('failure_kind')
    op.drop_index('uq_autoconfigure_run_one_running', table_name='autoconfigure_run')
    op.drop_index('ix_autoconfigure_run_model_id', table_name='autoconfigure_run')
    op.drop_table('autoconfigure_run')
