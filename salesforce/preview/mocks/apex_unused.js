export { unused as default } from './apex.js';
