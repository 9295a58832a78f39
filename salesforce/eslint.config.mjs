import lwcConfig from '@salesforce/eslint-config-lwc';
import jestPlugin from 'eslint-plugin-jest';

const jestRecommended = jestPlugin.configs['flat/recommended'];

export default [
    ...lwcConfig.configs.recommended,
    {
        files: ['force-app/main/default/lwc/**/__tests__/**/*.js'],
        ...jestRecommended,
        languageOptions: {
            ...jestRecommended.languageOptions,
            globals: { ...jestRecommended.languageOptions.globals, require: 'readonly' }
        },
        rules: {
            ...jestRecommended.rules,
            // Tests drive the wire adapters' test doubles (`getRecord.emit(...)`).
            '@lwc/lwc/no-unexpected-wire-adapter-usages': 'off'
        }
    }
];
