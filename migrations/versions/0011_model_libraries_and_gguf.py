"""copies found in other tools' libraries (LM Studio, Ollama, text-generation-webui), GGUF facts,
which copy a run loaded

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 18:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('model_copy') as batch:
        batch.add_column(sa.Column('library', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('library_root', sa.Text(), nullable=True))
        batch.add_column(sa.Column('label', sa.Text(), nullable=True))
        batch.add_column(sa.Column('digest', sa.String(length=71), nullable=True))
        batch.add_column(sa.Column('file_key', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('parameter_count', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('context_length', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('aliases', sa.JSON(), nullable=True))
        batch.create_index('ix_model_copy_digest', ['digest'])
    for table in ('load_attempt', 'measurement'):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('copy_path', sa.Text(), nullable=True))


def downgrade():
    for table in ('measurement', 'load_attempt'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('copy_path')
    with op.batch_alter_table('model_copy') as batch:
        batch.drop_index('ix_model_copy_digest')
        for column in ('aliases', 'context_length', 'parameter_count', 'file_key', 'digest', 'label',
                       'library_root', 'library'):
            batch.drop_column(column)
