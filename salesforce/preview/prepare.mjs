// Copies the component into the preview's module tree (LWC OSS resolves `c/dealGovernance` from
// src/modules/c/), without its Jest tests, and SLDS's stylesheet next to the bundle.
import { cpSync, mkdirSync, rmSync } from 'node:fs';

rmSync('src/modules', { recursive: true, force: true });
cpSync('../force-app/main/default/lwc/dealGovernance', 'src/modules/c/dealGovernance', {
    recursive: true,
    filter: (path) => !path.includes('__tests__')
});
mkdirSync('dist', { recursive: true });
cpSync(
    'node_modules/@salesforce-ux/design-system/assets/styles/salesforce-lightning-design-system.min.css',
    'dist/slds.css'
);
