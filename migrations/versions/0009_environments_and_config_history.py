"""environments (fingerprints), load_config history, what a load really was, jobs for other hosts, retests

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 11:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

RUN_TABLES = ('load_attempt', 'measurement')


def upgrade():
    op.create_table('environment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('facts', sa.JSON(), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('fingerprint')
    )
    op.create_index('ix_environment_host', 'environment', ['host'])
    op.create_table('load_config_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('load_config', sa.Text(), nullable=True),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('via', sa.String(length=16), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('restored_from', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("source IN ('existing', 'created', 'typed', 'import', 'suggestion', 'auto-configure', 'restore')",
                       name='ck_load_config_version_source'),
    sa.ForeignKeyConstraint(['model_id'], ['modelregistry.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('model_id', 'number', name='uq_load_config_version_model_number')
    )
    op.create_index('ix_load_config_version_model_id', 'load_config_version', ['model_id'])
    for table in RUN_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('config_version_id', sa.Integer(), nullable=True))
            batch.add_column(sa.Column('environment_id', sa.Integer(), nullable=True))
            batch.create_foreign_key(f'fk_{table}_config_version_id', 'load_config_version', ['config_version_id'],
                                     ['id'], ondelete='SET NULL')
            batch.create_foreign_key(f'fk_{table}_environment_id', 'environment', ['environment_id'], ['id'],
                                     ondelete='SET NULL')
            batch.create_index(f'ix_{table}_config_version_id', ['config_version_id'])
            batch.create_index(f'ix_{table}_environment_id', ['environment_id'])
    with op.batch_alter_table('load_attempt') as batch:
        batch.add_column(sa.Column('load_report', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('warnings', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('environment_status', sa.String(length=16), nullable=True))
    op.create_table('host_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('job', sa.String(length=16), nullable=False),
    sa.Column('force', sa.Boolean(), nullable=False),
    sa.Column('timeout', sa.Float(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('requested_by', sa.String(length=255), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claimed_by_pid', sa.Integer(), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.CheckConstraint("state IN ('queued', 'claimed', 'finished', 'failed', 'cancelled')", name='ck_host_job_state'),
    sa.CheckConstraint("job IN ('load', 'measure')", name='ck_host_job_job'),
    sa.ForeignKeyConstraint(['model_id'], ['modelregistry.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_host_job_model_id', 'host_job', ['model_id'])
    op.create_index('ix_host_job_host', 'host_job', ['host'])
    op.create_table('retest_state',
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('current', sa.String(length=200), nullable=True),
    sa.Column('results', sa.JSON(), nullable=True),
    sa.Column('stop_requested', sa.Boolean(), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=True),
    sa.Column('finished_at', sa.Float(), nullable=True),
    sa.Column('owner_pid', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('host')
    )
    # History begins with what each model has now: version 1, "existing".
    op.execute(
        "INSERT INTO load_config_version (model_id, number, load_config, source, created_at) "
        "SELECT id, 1, load_config, 'existing', updated_at FROM modelregistry"
    )


def downgrade():
    op.drop_table('retest_state')
    op.drop_index('ix_host_job_host', table_name='host_job')
    op.drop_index('ix_host_job_model_id', table_name='host_job')
    op.drop_table('host_job')
    with op.batch_alter_table('load_attempt') as batch:
        batch.drop_column('environment_status')
        batch.drop_column('warnings')
        batch.drop_column('load_report')
    for table in RUN_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f'ix_{table}_environment_id')
            batch.drop_index(f'ix_{table}_config_version_id')
            batch.drop_constraint(f'fk_{table}_environment_id', type_='foreignkey')
            batch.drop_constraint(f'fk_{table}_config_version_id', type_='foreignkey')
            batch.drop_column('environment_id')
            batch.drop_column('config_version_id')
    op.drop_index('ix_load_config_version_model_id', table_name='load_config_version')
    op.drop_table('load_config_version')
    op.drop_index('ix_environment_host', table_name='environment')
    op.drop_table('environment')
