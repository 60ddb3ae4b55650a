-- Tenant revisions (decision 0018): each change to a tenant or to its machines gives the
-- tenant's row the next value of one counter, taken late in the change's transaction and held
-- locked until its commit, so revisions are unique and in commit order, and ListTenantChanges
-- lists the tenants changed after a revision. Existing tenants are numbered in creation order.
ALTER TABLE tenants ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
UPDATE tenants SET revision = numbered.n
  FROM (SELECT id, row_number() OVER (ORDER BY create_time, id) AS n FROM tenants) AS numbered
  WHERE tenants.id = numbered.id;
CREATE INDEX tenants_by_revision ON tenants (revision);
CREATE TABLE tenant_revisions (last INTEGER NOT NULL);
INSERT INTO tenant_revisions (last) SELECT coalesce(max(revision), 0) FROM tenants;
