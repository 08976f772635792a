// esbuild inject for the CommonJS bundle: stands in for import.meta.url, which CommonJS lacks.
/* global __filename -- defined in the CommonJS bundle this file is injected into */
import { pathToFileURL } from 'node:url';

export const importMetaUrl = pathToFileURL(__filename).href;
