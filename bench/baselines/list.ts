/**
 * Raw baseline for a page of assets: bare node:http running the same keyset
 * SELECT (plus the page's tags) on better-sqlite3, answered with JSON.stringify.
 * Arguments: the database file, the org and the mode of the tenant to list.
 * Prints `listening <port>`.
 */
import { createServer } from 'node:http';
import SQLite from 'better-sqlite3';

const [file, orgId, mode] = process.argv.slice(2);
const db = new SQLite(file!, { readonly: true });
const page = db.prepare(
  `select id, title, mime_type, size, width, height, created_at from assets
   where org_id = ? and mode = ? and exhausted_at is null
   order by created_at desc, id desc limit 50`,
);
const server = createServer((_req, res) => {
  const rows = page.all(orgId, mode) as { id: string }[];
  const tags = db
    .prepare(`select asset_id, tag from asset_tags where asset_id in (${rows.map(() => '?').join(',')}) order by tag`)
    .all(...rows.map((r) => r.id)) as { asset_id: string; tag: string }[];
  const byAsset = new Map<string, string[]>();
  for (const t of tags) byAsset.set(t.asset_id, [...(byAsset.get(t.asset_id) ?? []), t.tag]);
  const body = JSON.stringify({
    data: { assets: { edges: rows.map((row) => ({ node: { ...row, tags: byAsset.get(row.id) ?? [] } })) } },
  });
  res.setHeader('content-type', 'application/json');
  res.end(body);
});
server.listen(0, '127.0.0.1', () => console.log(`listening ${(server.address() as { port: number }).port}`));
