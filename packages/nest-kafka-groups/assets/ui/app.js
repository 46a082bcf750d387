// The live page of the consumer groups: renders each server-sent sample with DOM calls only (no innerHTML: group
// ids, topics and error messages are shown as text), and keeps the lag history the first event brought.
(function () {
  'use strict';

  var PALETTE = ['#2457c5', '#1a7f37', '#8e44ad', '#c05621', '#00838f', '#ad1457', '#5d6d1e', '#4e5d78'];
  var body = document.body;
  var base = body.dataset.base;
  var onlyGroup = body.dataset.group;
  var history = {}; // group -> "topic:partition" -> [[at, lag], ...]
  var historyMs = 300000;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (name) {
        var value = attrs[name];
        if (value === undefined || value === null) return;
        if (name === 'text') node.textContent = value;
        else if (name === 'className') node.className = value;
        else node.setAttribute(name, String(value));
      });
    }
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) node.append(child);
    });
    return node;
  }

  function rate(value) {
    return value === null || value === undefined ? '–' : value.toFixed(value >= 100 ? 0 : 1);
  }

  function number(value) {
    return value === null || value === undefined ? '–' : String(value);
  }

  function setConnection(state, text) {
    var node = document.getElementById('connection');
    node.dataset.connection = state;
    node.textContent = text;
  }

  function record(snapshot) {
    if (snapshot.history) {
      Object.keys(snapshot.history).forEach(function (groupId) {
        history[groupId] = snapshot.history[groupId];
      });
    } else {
      snapshot.groups.forEach(function (group) {
        if (group.error !== null) return;
        var series = (history[group.groupId] = history[group.groupId] || {});
        group.partitions.forEach(function (p) {
          var key = p.topic + ':' + p.partition;
          (series[key] = series[key] || []).push([snapshot.at, p.lag]);
        });
      });
    }
    var oldest = snapshot.at - historyMs;
    Object.keys(history).forEach(function (groupId) {
      var series = history[groupId];
      Object.keys(series).forEach(function (key) {
        series[key] = series[key].filter(function (point) {
          return point[0] >= oldest;
        });
      });
    });
  }

  var SVG = 'http://www.w3.org/2000/svg';

  function sparkline(points, now) {
    var width = 120;
    var height = 30;
    var svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('role', 'img');
    if (!points || points.length === 0) {
      svg.setAttribute('aria-label', 'no lag samples yet');
      return svg;
    }
    var max = 1;
    points.forEach(function (point) {
      if (point[1] > max) max = point[1];
    });
    // The time axis spans the history kept, at least a minute: a page opened early is not one spike at the edge.
    var span = Math.min(historyMs, Math.max(60000, now - points[0][0]));
    var start = now - span;
    var coords = points.map(function (point) {
      var x = ((point[0] - start) / span) * width;
      var y = height - 1 - (point[1] / max) * (height - 3);
      return x.toFixed(1) + ',' + y.toFixed(1);
    });
    var first = coords[0].split(',')[0];
    var last = coords[coords.length - 1].split(',')[0];
    var area = document.createElementNS(SVG, 'polygon');
    area.setAttribute('class', 'area');
    area.setAttribute('points', first + ',' + height + ' ' + coords.join(' ') + ' ' + last + ',' + height);
    var line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('class', 'line');
    line.setAttribute('points', coords.join(' '));
    svg.append(area, line);
    svg.setAttribute('aria-label', 'lag over time, max ' + max);
    var title = document.createElementNS(SVG, 'title');
    title.textContent = 'lag, last ' + points.length + ' samples, max ' + max;
    svg.append(title);
    return svg;
  }

  function chip(index) {
    if (index < 0) return el('span', { className: 'chip none', text: '–' });
    var node = el('span', { className: 'chip', text: String.fromCharCode(65 + (index % 26)) });
    node.style.background = PALETTE[index % PALETTE.length];
    return node;
  }

  function assignmentText(assignment) {
    return Object.keys(assignment)
      .sort()
      .map(function (topic) {
        return topic + ' [' + assignment[topic].join(',') + ']';
      })
      .join('; ');
  }

  function renderMembers(group) {
    var head = el('tr', null, [
      el('th', { text: '' }),
      el('th', { text: 'client id' }),
      el('th', { text: 'host' }),
      el('th', { text: 'member id' }),
      el('th', { text: 'state' }),
      el('th', { text: 'partitions' }),
      el('th', { className: 'num', text: 'processed/s' }),
      el('th', { className: 'num', text: 'failed/s' }),
      el('th', { className: 'num', text: 'dead letters' }),
    ]);
    var rows = group.members.map(function (member, index) {
      return el(
        'tr',
        {
          className: member.local ? 'here' : '',
          'data-member-id': member.memberId || '',
          'data-local': String(member.local),
        },
        [
          el('td', null, [chip(index)]),
          el('td', null, [
            member.clientId || '–',
            member.local ? el('span', { className: 'here-tag', text: ' (this process)' }) : null,
          ]),
          el('td', { className: 'id', text: member.host || '–' }),
          el('td', {
            className: 'id',
            title: member.memberId || '',
            text: member.memberId || 'not joined yet',
          }),
          el('td', {
            text:
              (member.local ? member.state : 'other process') +
              (member.protocol === 'consumer' ? ' (group.protocol=consumer)' : ''),
            title: member.lastError || undefined,
          }),
          el('td', { text: assignmentText(member.assignment) || '–' }),
          el('td', { className: 'num', text: member.rates ? rate(member.rates.processedPerSec) : '–' }),
          el('td', { className: 'num', text: member.rates ? rate(member.rates.failedPerSec) : '–' }),
          el('td', { className: 'num', text: member.counts ? String(member.counts.deadLettered) : '–' }),
        ],
      );
    });
    return el('div', { className: 'table-wrap' }, [
      el('table', { className: 'members' }, [el('thead', null, [head]), el('tbody', null, rows)]),
    ]);
  }

  function renderGrid(group, topic, at) {
    var indexOf = {};
    group.members.forEach(function (member, index) {
      if (member.memberId) indexOf[member.memberId] = index;
    });
    var series = history[group.groupId] || {};
    var stopped = [];
    var cells = group.partitions
      .filter(function (p) {
        return p.topic === topic;
      })
      .map(function (p) {
        var index = p.memberId !== null && indexOf[p.memberId] !== undefined ? indexOf[p.memberId] : -1;
        var member = index >= 0 ? group.members[index] : null;
        var color = index >= 0 ? PALETTE[index % PALETTE.length] : '#98a2b3';
        if (p.stopped) stopped.push(el('li', { text: 'partition ' + p.partition + ': ' + p.stopped }));
        var badge = p.stopped ? 'stopped' : p.paused ? 'paused' : null;
        var cell = el(
          'div',
          {
            className: 'cell',
            'data-partition': p.topic + ':' + p.partition,
            'data-member': p.memberId || '',
            'data-paused': String(p.paused),
            'data-stopped': String(p.stopped !== null),
            title: p.stopped || undefined,
          },
          [
            el('div', { className: 'cell-head' }, [
              el('span', { className: 'p', text: 'P' + p.partition }),
              chip(index),
              badge ? el('span', { className: 'badge', text: badge }) : null,
            ]),
            el('div', {
              className: 'cell-owner',
              text: member ? (member.clientId || '?') + (member.local ? ' (here)' : '') : 'unassigned',
            }),
            el('div', {
              className: 'cell-lag',
              text:
                'lag ' +
                number(p.lag) +
                (p.committedOffset !== null ? ' · at ' + p.committedOffset + '/' + p.logEndOffset : ''),
            }),
            sparkline(series[p.topic + ':' + p.partition], at),
          ],
        );
        cell.style.borderLeftColor = color;
        return cell;
      });
    return [
      el('h3', { text: topic }),
      el('div', { className: 'grid', 'data-topic': topic }, cells),
      stopped.length > 0 ? el('ul', { className: 'stopped-list' }, stopped) : null,
    ];
  }

  function renderGroup(group, at) {
    var here = group.members.filter(function (m) {
      return m.local;
    }).length;
    var stats = el('div', { className: 'stats' }, [
      el('span', null, ['members ', el('b', { text: String(group.members.length) }), ' (' + here + ' here)']),
      el('span', null, ['processed/s ', el('b', { text: rate(group.rates.processedPerSec) })]),
      el('span', { className: group.rates.failedPerSec ? 'bad' : '' }, [
        'failed/s ',
        el('b', { text: rate(group.rates.failedPerSec) }),
      ]),
      el('span', { className: group.counts.deadLettered ? 'bad' : '' }, [
        'dead letters ',
        el('b', { text: String(group.counts.deadLettered) }),
      ]),
      el('span', null, ['lag ', el('b', { text: number(group.lag) })]),
    ]);
    var children = [
      el('div', { className: 'group-head' }, [
        el('h2', { text: group.groupId }),
        el('span', {
          className: 'state',
          'data-state': group.state || 'unknown',
          text: group.state || 'unknown',
        }),
        group.groupProtocol === 'consumer'
          ? el('span', {
              className: 'protocol',
              title:
                'A member with group.protocol=consumer (KIP-848) joined: the broker assigns the partitions',
              text: 'consumer protocol',
            })
          : null,
        stats,
      ]),
    ];
    if (group.error !== null) {
      children.push(
        el('div', {
          className: 'note error',
          'data-broker-error': 'true',
          text:
            'Broker not reachable: ' +
            group.error +
            '. Group state, other processes\u2019 members and lag are unknown until it answers.',
        }),
      );
    }
    if (group.startProblem !== null) {
      children.push(el('div', { className: 'note', text: 'Not started: ' + group.startProblem }));
    }
    children.push(renderMembers(group));
    group.topics.forEach(function (topic) {
      children.push.apply(children, renderGrid(group, topic, at));
    });
    return el('section', { className: 'group', 'data-group': group.groupId }, children);
  }

  function render(snapshot) {
    var main = document.getElementById('groups');
    var sections = snapshot.groups.map(function (group) {
      return renderGroup(group, snapshot.at);
    });
    if (sections.length === 0) {
      sections = [el('p', { className: 'muted', text: 'No consumer group runs in this process yet.' })];
    }
    main.replaceChildren.apply(main, sections);
    var down = snapshot.groups.filter(function (g) {
      return g.error !== null;
    });
    var banner = document.getElementById('banner');
    if (down.length > 0 && down.length === snapshot.groups.length) {
      banner.textContent =
        'The Kafka broker does not answer (' + down[0].error + '). Showing this process only.';
      banner.hidden = false;
    } else banner.hidden = true;
    body.dataset.brokerDown = String(down.length > 0 && down.length === snapshot.groups.length);
    document.getElementById('updated').textContent = 'updated ' + new Date(snapshot.at).toLocaleTimeString();
  }

  var source = new EventSource(
    base + '/events' + (onlyGroup ? '?group=' + encodeURIComponent(onlyGroup) : ''),
  );
  source.onopen = function () {
    setConnection('live', 'live');
  };
  source.onerror = function () {
    // A refused stream (the service is shutting down) closes the EventSource for good; else it retries.
    if (source.readyState === EventSource.CLOSED)
      setConnection('lost', 'the service stopped; reload to reconnect');
    else setConnection('lost', 'connection to the service lost, retrying');
  };
  source.onmessage = function (event) {
    var snapshot = JSON.parse(event.data);
    historyMs = snapshot.historyMs;
    document.getElementById('history').textContent = Math.round(historyMs / 60000) + ' min';
    record(snapshot);
    // The first event before any sample carries only the history: keep the waiting text until groups arrive.
    if (snapshot.history && snapshot.groups.length === 0) return;
    setConnection('live', 'live');
    render(snapshot);
  };
})();
