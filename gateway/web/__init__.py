"""The station web app (issue 21): live map, day reports, fence editor, for supervisors, station
staff and analysts.

- :mod:`gateway.web.auth`: accounts, password hashing, sessions, CSRF tokens, roles;
- :mod:`gateway.web.audit`: who viewed or exported whose positions, who changed which boundary;
- :mod:`gateway.web.app`: the Starlette application and the guard that enforces the route table
  (:mod:`gateway.web.routing`: each route with the roles allowed);
- :mod:`gateway.web.pages`: the handlers, one module per area (account, live, day, fences);
- :mod:`gateway.web.live`, :mod:`gateway.web.day`, :mod:`gateway.web.fence_sets`: what the
  pages show, as plain functions over the database;
- :mod:`gateway.web.charts`: SVG charts drawn on the server.
"""
