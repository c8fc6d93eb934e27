"""The reports pages for people (/ui): routes.py (handlers), session.py (the key's cookie),
pages.py (tables and charts from report answers), errors.py (problems as pages), templates/,
static/, and the npm packages of package.json installed into node_modules/."""
