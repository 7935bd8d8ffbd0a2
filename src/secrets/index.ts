/** What other features reuse from the secrets tooling: `.env` reading and safe writing, the key ring. */
export { parseDotenv, DotenvDocument, DotenvError, type DotenvProblem } from './dotenv.js';
export { readDotenvFile, writeDotenvFile, writeFileAtomic, writeNewPrivateFile, backupFile, ensurePrivateDir, fileMode, PRIVATE_FILE_MODE, PRIVATE_DIR_MODE } from './files.js';
export { keyId, parsePreviousKeys, formatPreviousKeys, type PreviousKey } from './keyring.js';
export { SECRET_SPECS, EXTERNAL_SECRETS, DEFAULT_BACKUP_KEY_FILE } from './specs.js';
