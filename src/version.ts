import packageJson from '../package.json' with { type: 'json' };

export const buildInfo = {
  version: packageJson.version,
  /** Set at packaging time (git commit); "unknown" when run from a plain checkout. */
  revision: process.env['VFIO_EXPORTER_REVISION'] ?? 'unknown',
  nodejs: process.version,
};
